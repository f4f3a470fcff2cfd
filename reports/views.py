"""The report pages of the admin site: filters as GET parameters, bounded pages, a CSV export."""
