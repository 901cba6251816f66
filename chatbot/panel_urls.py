from django.urls import path

from chatbot import panels

urlpatterns = [path("subscriber/<int:pk>/", panels.subscriber_panel, name="panel-subscriber")]
