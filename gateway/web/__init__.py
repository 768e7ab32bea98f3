"""The web service `gateway serve` runs in a process beside its listeners and workers
(`gateway.web.process`): customers' status pages, the knowledge base's articles, the
engineers' queue, and the operators' health checks and figures.

Pages are rendered on the server (`templates/web/`, Jinja2); none needs JavaScript to be
read. A GET never changes a ticket (mail scanners follow links); the one thing a GET writes
is the trail's note that a suggested article was first opened from its link, which a
scanner may write as well, and which the page goes without when the database cannot take
it within a second. Every POST carries a CSRF token. What a link opens is decided at each
request from its signature (`gateway.links`) and the ticket as it is now.

    GET  /t/<token>              a ticket's status page, for the participant the link names
    POST /t/<token>/answer       "Fixed" / "Not fixed" on a resolved ticket
    GET  /f/<token>              one of the ticket's public files, while the link lives
    GET  /kb/<slug>[?t=<token>]  a published article; with a status token of a ticket it was
                                 suggested to, the "This solved it" button
    POST /kb/<slug>/solved       "This solved it": closes that ticket as confirmed
    GET  /queue[?show=...]       the engineers' queue (signed in), mine / unassigned / waiting
    GET  /queue/<id>             a ticket as engineers see it, internal notes included
    GET  /queue/files/<id>       any file of a ticket, for engineers
    GET|POST /sign-in            asks for a sign-in link by mail
    GET|POST /sign-in/<token>    the link's page; its button signs the engineer in
    POST /sign-out
    GET  /healthz, /readyz, /metrics
"""

from gateway.web.process import WebProcess
from gateway.web.server import Beside

__all__ = ["Beside", "WebProcess"]
