"""The run page, shared by the web UI (live, served by ``ui``) and the HTML report of a run (the
same page frozen, written by ``engine.reports``): what the page shows of a run
(``run_page``, ``timeline``) and the Jinja2 templates beside it that draw it. Jinja2 is
imported only when a page is rendered, so the light commands never load it."""
