"""Every state change of ``ratings``, one ``do_*`` function each, in one module per topic.

Views, the API, tasks, the admin and commands call these, never the models' write methods
(Zulip's ``zerver/actions/``). Topics: ``studies`` (comparisons, attention checks), ``setup`` (drafts
made and filled in from the site, clone), ``launch`` (readiness, Launch, close, reopen), ``raters``
(arrival, consent, leases, completion), ``votes``, ``quality`` (exclusion), ``snapshots``
(analysis), ``battles`` (import).
"""
