"""Dashboard pages, one module per area: parse the request, call a selector or service, render.

Every view is wrapped in `viewer_required` (login plus at least the viewer role).
"""
