"""Reading votes into numbers, offline: vote tables (``votes``), snapshot payloads (``payload``, typed in
``schema``), snapshots (``snapshots``), rater quality (``quality``), fact-check results (``fact_check``),
battles in the Chatbot Arena format (``battles``) and the CSV exports (``exports``). Statistics
themselves are in the top-level ``stats`` package (pure numpy/scipy). Nothing here changes state.
"""
