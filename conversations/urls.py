from django.urls import path

from conversations import views

urlpatterns = [
    path("", views.console, name="console"),
]
