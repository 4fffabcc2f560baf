"""Votes into numbers: pure numpy/scipy functions on arrays, no ORM.

Each module opens with the formula it implements. Votes arrive as three arrays of
equal length: ``model_a`` and ``model_b`` (integer model indices) and ``outcome``
(1 = A won, 0 = B won, 0.5 = a tie, which counts half a win for each side).
"""
