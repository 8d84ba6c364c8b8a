"""Helpers shared by experiment tests (not fixtures: each test module decides its scope)."""


def tiny_classifier(dataset: str, epochs: int = 1):
    """A narrow classifier of `dataset` (one 8-channel conv, 32 features, `epochs` epochs).

    Experiment tests check the experiments' plumbing and claims on it in seconds; the classifiers' own
    quality is tested in tests/metrics (the Olivetti default alone trains for a minute on a cold cache). It
    is cached beside the default classifiers under its own key (every config field enters the key), so a
    second test run loads it.
    """
    from jgen.metrics import classifier

    c = classifier.classifier_config(dataset)
    c.channels, c.features, c.epochs = (8,), 32, epochs
    c.optim.warmup_steps = 10
    return classifier.get_classifier(dataset, config=c)
