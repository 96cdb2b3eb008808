"""Target networks (target.py), hypernetworks (hypernet.py) and their sizes (sizes.py).

No eager imports here: the size grammar in ``sizes`` must stay importable without torch."""
