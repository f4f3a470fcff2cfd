"""Settings for the server ``bench_pages`` starts: the product's, plus the benchmark's
minimal view. Only that command's gunicorn uses this module; no deployment names it."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "demo.bench_urls"
