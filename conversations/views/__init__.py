"""The console's pages: one module per page (inbox, conversation, dashboard)
plus the small endpoints every page shares (common)."""
