"""Background task results in Django admin: what ran, what failed and why,
and a "Retry" action for the failures.

Replaces django-tasks-db's own page (superusers only, no retry) with one that
follows the project's admin rules (``HelpdeskAdmin``: the admins who run the
helpdesk see it). History stays as it was: nothing here edits or deletes a
result; a retry is a new row that points at the failed one (``retry_of``),
and the failed row's admin history says who retried it.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import django_tasks_db.admin  # noqa: F401 - registers its admin first, replaced below
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult, get_date_max

from accounts.admin import HelpdeskAdmin, runs_the_helpdesk
from ispsupport.errors import ServiceError
from ispsupport.tasks import (
    result_attempt,
    result_retry_of,
    results_retried_as,
    retried_results,
    task_result_retry,
)


def _change_url(result_id: str) -> str:
    return reverse("admin:django_tasks_database_dbtaskresult_change", args=[result_id])


class RetriedFilter(admin.SimpleListFilter):
    """Failed runs that were retried (automatically or by hand) versus those
    nobody retried yet: the ones an admin has to look at."""

    title = _("retried")
    parameter_name = "retried"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, Any]]:
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(pk__in=retried_results())
        if self.value() == "no":
            return queryset.exclude(pk__in=retried_results())
        return queryset


class TaskResultChangeList(ChangeList):
    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        # One query for the whole page, not one per row.
        links = results_retried_as(result.pk for result in self.result_list)
        for result in self.result_list:
            result.retried_as_id = links.get(str(uuid.UUID(str(result.pk))))


if admin.site.is_registered(DBTaskResult):
    admin.site.unregister(DBTaskResult)


@admin.register(DBTaskResult)
class TaskResultAdmin(HelpdeskAdmin):
    list_display = [
        "short_id",
        "task_path",
        "status",
        "attempt",
        "enqueued_at",
        "started_at",
        "finished_at",
        "error",
        "retried_as",
    ]
    list_display_links = ["short_id"]
    list_filter = ["status", RetriedFilter, "task_path", "queue_name"]
    search_fields = ["task_path", "exception_class_path"]
    ordering = ["-enqueued_at"]
    actions = ["retry_failed"]
    fields = [
        "id",
        "task_path",
        "status",
        "attempt",
        "retry_of",
        "retried_as",
        "queue_name",
        "priority",
        "backend_name",
        "enqueued_at",
        "run_after_display",
        "started_at",
        "finished_at",
        "worker_ids",
        "arguments",
        "return_value",
        "exception_class_path",
        "traceback_display",
    ]
    readonly_fields = fields

    # Results are history: nobody adds, edits or deletes one here
    # (``manage.py prune_db_task_results`` deletes old ones).
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return runs_the_helpdesk(request)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return TaskResultChangeList

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            result_id = uuid.UUID(search_term.strip())
        except ValueError:
            return found, may_have_duplicates
        # A result's id (from a log line) finds it, and finds its retries.
        by_id = queryset.filter(Q(pk=result_id) | Q(args_kwargs__kwargs__retry_of=str(result_id)))
        return found | by_id, may_have_duplicates

    # --- Columns and fields -----------------------------------------------------------

    @admin.display(description=_("id"), ordering="id")
    def short_id(self, obj: DBTaskResult) -> str:
        return str(obj.pk)[:8]

    @admin.display(description=_("attempt"))
    def attempt(self, obj: DBTaskResult) -> int:
        return result_attempt(obj)

    @admin.display(description=_("error"), ordering="exception_class_path")
    def error(self, obj: DBTaskResult) -> str:
        if not obj.exception_class_path:
            return "-"
        return format_html(
            '<span title="{}">{}</span>',
            obj.exception_class_path,
            obj.exception_class_path.rsplit(".", 1)[-1],
        )

    @admin.display(description=_("retried as"))
    def retried_as(self, obj: DBTaskResult) -> str:
        if hasattr(obj, "retried_as_id"):
            retry_id = obj.retried_as_id  # the changelist fetched the page's links
        else:
            retry_id = results_retried_as([obj.pk]).get(str(uuid.UUID(str(obj.pk))))
        if not retry_id:
            return "-"
        return format_html('<a href="{}">{}</a>', _change_url(retry_id), retry_id[:8])

    @admin.display(description=_("retry of"))
    def retry_of(self, obj: DBTaskResult) -> str:
        old_id = result_retry_of(obj)
        if not old_id:
            return "-"
        return format_html('<a href="{}">{}</a>', _change_url(old_id), old_id)

    @admin.display(description=_("run after"))
    def run_after_display(self, obj: DBTaskResult) -> Any:
        if obj.run_after is None or obj.run_after == get_date_max():
            return "-"
        return obj.run_after

    @admin.display(description=_("arguments"))
    def arguments(self, obj: DBTaskResult) -> SafeString:
        text = json.dumps(obj.args_kwargs, indent=2, ensure_ascii=False, sort_keys=True)
        return format_html("<pre>{}</pre>", text)

    @admin.display(description=_("traceback"))
    def traceback_display(self, obj: DBTaskResult) -> str:
        if not obj.traceback:
            return "-"
        # Escaped: an exception message may quote what a customer wrote.
        return format_html("<pre>{}</pre>", obj.traceback)

    # --- Retry ------------------------------------------------------------------------

    @admin.action(description=_("Retry selected failed tasks"), permissions=["retry"])
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[DBTaskResult]) -> None:
        selected = list(queryset.order_by("enqueued_at"))
        failed = [r for r in selected if r.status == TaskResultStatus.FAILED]
        links = results_retried_as(r.pk for r in failed)
        not_failed = len(selected) - len(failed)
        retried = already = missing = 0
        for result in failed:
            if str(uuid.UUID(str(result.pk))) in links:
                already += 1
                continue
            try:
                new = task_result_retry(result=result)
            except ServiceError as exc:
                if exc.code == "already_retried":
                    already += 1
                elif exc.code == "not_failed":
                    not_failed += 1
                else:
                    missing += 1
                continue
            retried += 1
            self.log_change(request, result, gettext("Retried as task %(id)s.") % {"id": new.pk})
        self._report(request, retried, not_failed, already, missing)

    def _report(
        self, request: HttpRequest, retried: int, not_failed: int, already: int, missing: int
    ) -> None:
        if retried:
            self.message_user(
                request,
                ngettext(
                    "%(count)d failed task enqueued again.",
                    "%(count)d failed tasks enqueued again.",
                    retried,
                )
                % {"count": retried},
                messages.SUCCESS,
            )
        if already:
            self.message_user(
                request,
                ngettext(
                    "%(count)d task skipped: it was already retried.",
                    "%(count)d tasks skipped: they were already retried.",
                    already,
                )
                % {"count": already},
                messages.WARNING,
            )
        if not_failed:
            self.message_user(
                request,
                ngettext(
                    "%(count)d task skipped: only failed tasks are retried.",
                    "%(count)d tasks skipped: only failed tasks are retried.",
                    not_failed,
                )
                % {"count": not_failed},
                messages.WARNING,
            )
        if missing:
            self.message_user(
                request,
                ngettext(
                    "%(count)d task not retried: its code, queue or backend no longer exists.",
                    "%(count)d tasks not retried: their code, queue or backend no longer exists.",
                    missing,
                )
                % {"count": missing},
                messages.ERROR,
            )
