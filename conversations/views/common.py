"""Endpoints every console page uses: the unread counter behind the tab title."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Sum
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from conversations.models import Conversation


@never_cache
@require_GET
@login_required
def unread(request: HttpRequest) -> JsonResponse:
    """Customer messages not yet read in the conversations assigned to me:
    the number in the tab title and the cue for the optional sound."""
    total = (
        Conversation.objects.filter(assignee=request.user)
        .exclude(state=Conversation.State.RESOLVED)
        .aggregate(total=Sum("unread_count"))["total"]
    )
    return JsonResponse({"mine": total or 0})
