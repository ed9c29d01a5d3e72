"""Dependencies shared by the dataset routes: scopes and org-scoped path objects."""

from __future__ import annotations

from app.core.errors import NotFound
from app.core.tenancy import path_object
from app.identity.principal import require
from app.models import Dataset, DatasetItem

can_read = require("datasets:read")
can_write = require("datasets:write")
# path_object runs before the body is validated: another org's id is a 404 whatever was sent.
dataset_r = path_object(Dataset, "dataset_id", what="Dataset", scope="datasets:read")
dataset_w = path_object(Dataset, "dataset_id", what="Dataset", scope="datasets:write")
item_r = path_object(DatasetItem, "item_id", what="Item", scope="datasets:read")
item_w = path_object(DatasetItem, "item_id", what="Item", scope="datasets:write")


def in_dataset(item: DatasetItem, dataset: Dataset) -> DatasetItem:
    """An item addressed under another dataset of the same org is not found there."""
    if item.dataset_id != dataset.id:
        raise NotFound(f"Item '{item.id}' not found.")
    return item
