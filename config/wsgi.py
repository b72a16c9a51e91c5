"""The WSGI application that gunicorn serves (`gunicorn config.wsgi`), one per worker process.

Once Django is set up and the URLconf has imported every view, the worker's objects so far
(modules, classes, URL patterns, serializer fields: hundreds of thousands) leave the garbage
collector's sight (`gc.freeze`). They live as long as the worker, yet every full collection
walked all of them: 80 ms on a 2-core machine, paid by whichever request happened to trigger it
(a search page's p95, a write's tail; bench/README.md). Objects that requests make are
collected as before.
"""

import gc
import os
from importlib import import_module

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
application = get_wsgi_application()
import_module(settings.ROOT_URLCONF)  # every app's views, serializers and URL patterns, now
gc.collect()  # nothing that is garbage already goes into the frozen generation
gc.freeze()
