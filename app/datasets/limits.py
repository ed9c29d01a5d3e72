"""Upload limits in one place.

Module attributes (not constants copied into callers) so tests and operators can tune them:
callers always read ``limits.NAME`` at call time.
"""

from __future__ import annotations

MB = 1024 * 1024

# One image: training sets are photos and renders; 50 MB covers a 16-bit 40 MP PNG.
MAX_FILE_BYTES = 50 * MB
# Decoded size cap, checked from the header before any pixel is decoded. A 40 MP RGBA image
# decodes to ~160 MB; anything bigger is either a mistake or a decompression bomb.
MAX_PIXELS = 40_000_000
MAX_SIDE = 16_384

# One multipart request / one zip.
MAX_FILES_PER_REQUEST = 500
MAX_REQUEST_BYTES = 2048 * MB
MAX_ZIP_BYTES = 2048 * MB
MAX_ZIP_ENTRIES = 2_000
MAX_ZIP_UNCOMPRESSED_BYTES = 4096 * MB
# Images barely compress; a big entry that claims more than this ratio is a bomb.
MAX_ZIP_RATIO = 100
RATIO_CHECK_MIN_BYTES = 1 * MB
MAX_CAPTION_FILE_BYTES = 64 * 1024
MAX_CAPTIONS_IMPORT_BYTES = 20 * MB

MAX_ITEMS_PER_DATASET = 10_000
MAX_CAPTION_CHARS = 10_000
MAX_BULK_ITEMS = 1_000

# Presigned uploads.
PRESIGN_EXPIRES_S = 3600
MAX_PRESIGN_FILES = 500

# Thumbnails: small WebP shown in dataset grids.
THUMB_SIZE = 256
THUMB_QUALITY = 80

# Multipart bodies carry boundaries and headers around each file; allow for them when the
# Content-Length is compared with what storage has left.
MULTIPART_SLACK_BYTES = 64 * 1024
