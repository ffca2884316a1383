"""Who may act: API tokens (`fl_<id>_<secret>`, a salted hash stored) and the roles they carry."""
