"""Every ORM model, imported here so Alembic and the app see one complete MetaData."""

from app.models.base import Base
from app.models.captioning import CAPTIONER_KINDS, Captioner, CaptionJob, CaptionSuggestion
from app.models.datasets import Dataset, DatasetItem, PendingUpload
from app.models.identity import (
    ROLES,
    ApiKey,
    Invitation,
    Membership,
    Organization,
    PasswordReset,
    User,
    UserSession,
)
from app.models.integrations import (
    AuditEvent,
    IdempotencyRecord,
    WebhookDelivery,
    WebhookEndpoint,
)
from app.models.library import Model, ModelLink
from app.models.training import (
    JOB_STATUSES,
    JOB_TYPES,
    BaseModel,
    Checkpoint,
    JobLogLine,
    JobMetric,
    TrainingJob,
    ValidationImage,
)

__all__ = [
    "Base", "Dataset", "DatasetItem", "PendingUpload", "ROLES", "ApiKey", "Membership",
    "Organization", "User", "UserSession", "Invitation", "PasswordReset",
    "AuditEvent", "IdempotencyRecord", "WebhookDelivery",
    "WebhookEndpoint", "Model", "ModelLink", "JOB_STATUSES", "JOB_TYPES", "BaseModel", "Checkpoint",
    "JobLogLine", "JobMetric", "TrainingJob", "ValidationImage", "CAPTIONER_KINDS",
    "CaptionJob", "Captioner", "CaptionSuggestion",
]
