"""The operations console: server-rendered pages (FastAPI + Jinja2) over the same read models
and actions as the JSON API, for the person on duty. Operators log in (throttled after wrong
passwords: ``throttle``) to a session kept on the server (``sessions``); a viewer sees
metadata, an operator may also replay, act on incidents and open patient data with a
reason (written to the access log first)."""
