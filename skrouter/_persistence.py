"""Types to trust when loading skrouter estimators saved with skops."""

_TRUSTED_TYPES = [
    "skrouter.routers._knn.KNNRouter",
    "skrouter.routers._kmeans.KMeansRouter",
    "skrouter.routers._mf.MFRouter",
    "skrouter.routers._reference.RandomRouter",
    "skrouter.routers._reference.SingleModelRouter",
    "skrouter.features._clip.CLIPFeaturizer",
    "skrouter.features._fusion.AdaptiveFusion",
    "skrouter.features._text.SentenceEmbedder",
    "skrouter.features._image_stats.ImageStatsFeaturizer",
]


def get_trusted_types():
    """Return the skrouter types that ``skops.io.load`` may build.

    skops refuses to load types it does not know unless the caller trusts
    them. These are skrouter's own estimators; their fitted state contains only
    numpy arrays, Python built-ins and scikit-learn objects, which skops
    trusts by default. Check a file with ``skops.io.get_untrusted_types``
    before loading it: a type outside this list means the file contains
    something else.

    Returns
    -------
    types : list of str
        Fully qualified class names.

    Examples
    --------
    >>> import skops.io as sio
    >>> from skrouter import get_trusted_types
    >>> from skrouter.datasets import make_routing_problem
    >>> from skrouter.routers import KNNRouter
    >>> X, y = make_routing_problem(n_queries=100, random_state=0)
    >>> data = sio.dumps(KNNRouter().fit(X, y))
    >>> sio.get_untrusted_types(data=data)
    ['skrouter.routers._knn.KNNRouter']
    >>> router = sio.loads(data, trusted=get_trusted_types())
    """
    return list(_TRUSTED_TYPES)
