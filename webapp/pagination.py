"""The one page shape of every list in the API: DRF's envelope `{"count", "next", "previous",
"results"}`, asked for with `page` and `page_size` (50 rows unless asked, at most 200).

It is the default for every DRF list view (`REST_FRAMEWORK["DEFAULT_PAGINATION_CLASS"]`), and
drf-spectacular documents the envelope and both parameters from it. An extra action on a paged
view set that answers a plain JSON array must say so with `@action(..., pagination_class=None)`:
otherwise the schema describes its `many=True` answer as a page.
"""

from __future__ import annotations

from rest_framework import pagination

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


class PageNumberPagination(pagination.PageNumberPagination):
    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    page_query_description = "Which page: 1 (the default) is the first; a page past the last answers 404."
    invalid_page_message = "This list has no page {page_number}: its pages run from 1 to the last that holds rows."
    page_size_query_description = (f"Rows per page: {DEFAULT_PAGE_SIZE} unless given, at most {MAX_PAGE_SIZE} "
                                   f"(a larger number gives {MAX_PAGE_SIZE}).")
