"""The console, mounted at /console/. Pages render on the server; the
``part``/fragment endpoints return the same HTML pieces the pages are made of,
which the browser fetches when a live event says something changed."""

from django.urls import path

from conversations.views import common, dashboard, inbox, thread

urlpatterns = [
    path("", inbox.inbox, name="console"),
    path("rows/", inbox.rows, name="console-rows"),
    path("row/<int:pk>/", inbox.row, name="console-row"),
    path("unread/", common.unread, name="console-unread"),
    path("c/<int:pk>/", thread.conversation, name="console-conversation"),
    path("c/<int:pk>/messages/", thread.messages, name="console-messages"),
    path("c/<int:pk>/m/<int:message_id>/", thread.message, name="console-message"),
    path("c/<int:pk>/n/<int:note_id>/", thread.note, name="console-note"),
    path("c/<int:pk>/canned/", thread.canned, name="console-canned"),
    path("c/<int:pk>/header/", thread.header, name="console-conversation-header"),
    path("c/<int:pk>/side/", thread.side, name="console-conversation-side"),
    path("dashboard/", dashboard.dashboard, name="console-dashboard"),
]
