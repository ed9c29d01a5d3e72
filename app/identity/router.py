"""The identity domain's routes, gathered in one router."""

from __future__ import annotations

from fastapi import APIRouter

from app.identity.auth_router import router as auth_router
from app.identity.invitations_router import router as invitations_router
from app.identity.keys_router import router as keys_router
from app.identity.members_router import router as members_router
from app.identity.password_router import router as password_router

router = APIRouter()
for _part in (auth_router, password_router, keys_router, members_router, invitations_router):
    router.include_router(_part)
