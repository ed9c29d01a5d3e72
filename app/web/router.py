"""HTML pages of the dashboard. Each page is a shell; its ES module fetches the JSON API."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from app.core.deps import DB
from app.web.assets import asset_url
from app.web.session import Viewer, current_viewer

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals["asset"] = asset_url

router = APIRouter(include_in_schema=False)

_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _render(request: Request, template: str, viewer: Viewer | None, **context: Any) -> Response:
    return templates.TemplateResponse(
        request, template, {"viewer": viewer, **context}, headers=_HEADERS
    )


def _page(template: str, nav: str, title: str):  # type: ignore[no-untyped-def]
    """A signed-in page; anyone else is sent to /login and brought back afterwards."""

    def handler(request: Request, db: Session = DB) -> Response:
        viewer = current_viewer(request, db)
        if viewer is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
        return _render(request, template, viewer, nav=nav, title=title,
                       ids=dict(request.path_params))

    return handler


_PAGES = [
    ("/", "home.html", "home", "Overview"),
    ("/datasets", "datasets.html", "datasets", "Datasets"),
    ("/datasets/{dataset_id}", "dataset.html", "datasets", "Dataset"),
    ("/jobs", "jobs.html", "jobs", "Training jobs"),
    ("/jobs/new", "job_new.html", "jobs", "New training job"),
    ("/jobs/{job_id}", "job.html", "jobs", "Training job"),
    ("/models", "models.html", "models", "Model library"),
    ("/settings", "settings.html", "settings", "Settings"),
]
for _path, _template, _nav, _title in _PAGES:
    router.add_api_route(_path, _page(_template, _nav, _title), methods=["GET"],
                         response_class=HTMLResponse, name=f"page:{_template}")


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, db: Session = DB) -> Response:
    if current_viewer(request, db) is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    return _render(request, "login.html", None, title="Sign in")


def _safe_next(target: str | None) -> str:
    # Only same-origin paths: never bounce a signed-in user to another origin. Browsers read
    # "/\host" as "//host", and drop tabs and newlines from URLs, so those are refused too.
    if (target and target.startswith("/") and target[1:2] not in ("/", "\\")
            and not any(ch in target for ch in "\\\t\r\n")):
        return target
    return "/"


@router.get("/invite/{token}", response_class=HTMLResponse)
def invite_page(token: str, request: Request, db: Session = DB) -> Response:
    """Accept an invitation: signed in, join; else sign in first, or create the account."""
    viewer = current_viewer(request, db)
    # Drawn without the app shell: the visitor may not be a member of anything yet.
    return _render(request, "invite.html", None, title="Invitation", token=token,
                   signed_in_as=viewer.email if viewer else "")


@router.get("/reset-password", response_class=HTMLResponse)
def reset_request_page(request: Request) -> Response:
    return _render(request, "reset_request.html", None, title="Reset your password")


@router.get("/reset-password/{token}", response_class=HTMLResponse)
def reset_set_page(token: str, request: Request) -> Response:
    return _render(request, "reset_set.html", None, title="Choose a new password", token=token)


def install(app: FastAPI) -> None:
    """Serve the dashboard pages and their static assets."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
