"""Size bounds of the TBM data kept per user (views, link history), shared by gateway and userstore.

TBM sets none of these (only its 10 MiB body cap); each one is far above what TBM's frontend writes
and keeps one user from filling a shard's disk. The gateway refuses (or, in a bulk import, skips)
what exceeds them with an error naming the field; the userstore enforces them again.
"""

from __future__ import annotations

# Custom views ------------------------------------------------------------------------------------
# The fields a client writes, in table order: the body's fields, the columns, the update paths.
VIEW_FIELDS = (
    "name",
    "filters",
    "sort_field",
    "sort_direction",
    "visible_columns",
    "asset_type",
    "search_query",
)
MAX_VIEWS = 100  # per user; the frontend shows them as tabs
MAX_VIEW_NAME = 500  # characters
MAX_VIEW_TEXT = 200  # characters of sort_field, sort_direction, asset_type
MAX_VIEW_SEARCH = 1000  # characters of search_query
MAX_VIEW_FILTERS_BYTES = 64 * 1024  # UTF-8 bytes of the filters' JSON
MAX_VIEW_COLUMNS_BYTES = 16 * 1024  # UTF-8 bytes of visible_columns' JSON

# Link history ------------------------------------------------------------------------------------
MAX_LINK_ID = 256  # characters of item_id and file_id (TorBox ids are numbers)
MAX_LINK_URL = 8192  # characters of a generated link
MAX_LINK_NAME = 4096  # characters of item_name and file_name (paths can be long)
MAX_LINK_SEARCH = 2000  # characters of a search (a pasted link)
MAX_LINK_IMPORT = 50_000  # entries of one bulk import (a whole localStorage history)
MAX_LINK_DELETE = 10_000  # ids of one bulk delete (the frontend deletes a page's selection)
# Entries kept per user: beyond it the oldest go (the frontend reads the newest 8,000).
MAX_LINK_ROWS = 100_000
