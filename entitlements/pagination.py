"""Paginators whose cost does not grow with the rows that are not shown.

Django's ``Paginator`` counts every row of the list to number its pages: at Entra's limits
(300,000 assignments) that count cost more than the page it numbered. These count at most
``CAP`` rows (``SELECT COUNT(*) FROM (... LIMIT CAP + 1)``); beyond that the list says
"more than" and one filters or searches instead of paging that far.
"""

from django.core.paginator import Paginator
from django.utils.functional import cached_property

# People page through a few hundred rows and search for the rest.
CAP = 1_000
# My Access: ten pages of 25; counting each candidate package costs its policy check.
PORTAL_CAP = 250


class BoundedCountPaginator(Paginator):
    """A ``Paginator`` that counts up to ``cap`` rows; ``capped`` says the count stopped."""

    cap = CAP

    def __init__(self, object_list, per_page, *args, cap=None, **kwargs):
        super().__init__(object_list, per_page, *args, **kwargs)
        if cap is not None:
            self.cap = cap

    @cached_property
    def _counted(self):
        return self.object_list.order_by()[: self.cap + 1].count()

    @cached_property
    def count(self):
        return min(self._counted, self.cap)

    @property
    def capped(self):
        """Whether there are more rows than ``count`` says."""
        return self._counted > self.cap


def paginate(queryset, page_number, per_page, cap=CAP):
    """One page of ``queryset``; a bad or too large number gives a valid page."""
    return BoundedCountPaginator(queryset, per_page, cap=cap).get_page(page_number)
