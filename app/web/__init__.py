"""The web dashboard: server-rendered pages that call the JSON API from the browser."""
