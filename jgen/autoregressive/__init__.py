"""Autoregressive models of images: conditional probability tables, LSTM, WaveNet, PixelCNN."""
