"""``loa report``: a campaign's report (HTML, XLSX, CSV, JSON) and the daily update;
``command`` is the command, ``words`` every label in both languages, ``html``, ``charts``
and ``xlsx`` the formats, ``daily`` the daily update."""
