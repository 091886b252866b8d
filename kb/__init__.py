"""Knowledge base: dump reading, priors, aliases and the SQLite store.

`kb` is the bottom layer: it knows nothing about models or FAISS. Its `types` and `errors`
modules are the shared language of the whole project.
"""
