"""Pages and endpoints: the rater's path (``rater``), researchers' pages (``research``), the REST API (``api``)."""
