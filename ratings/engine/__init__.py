"""The rater path's machinery: who sees what next (``assignment``), the locks it takes (``locks``), its
prepared SQL (``hotpath``) and the one renderer for model text (``rendering``). The only raw SQL of
``ratings`` lives here. Callers outside ``ratings.actions`` and ``ratings.analysis`` do not import it.
"""
