"""Console login: Django's LoginView with the same failed-login limit as the API."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from accounts.ratelimit import login_check, login_failed


class ConsoleLoginView(auth_views.LoginView):
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        username = request.POST.get("username", "")
        limit = login_check(request, username)
        if limit.limited:
            form = self.get_form()
            context = self.get_context_data(
                form=form,
                limited_message=_("Too many failed logins. Try again in %(seconds)d seconds.")
                % {"seconds": limit.retry_after},
            )
            response = self.render_to_response(context, status=429)
            response["Retry-After"] = str(limit.retry_after)
            return response
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: Any) -> HttpResponse:
        login_failed(self.request, self.request.POST.get("username", ""))
        return super().form_invalid(form)
