"""Loan books: synthetic loan books from a CTGAN-style tabular GAN, risk-based loan pricing, and the
evaluation of synthetic books (quality, TSTR/TRTR utility, DCR privacy).

``data`` (German credit, column types, upload checks, CTGAN's table encoding), ``models``
(:class:`LoanBookGAN`, :class:`LoanPricer`), ``evaluate``, ``cli`` (``genforge finance loans``).
Public names are exported from :mod:`genforge.finance`.
"""
