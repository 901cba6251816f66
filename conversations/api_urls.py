from django.urls import include, path
from rest_framework.routers import DefaultRouter

from conversations import api

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("conversations", api.ConversationViewSet, basename="conversation")
router.register("contacts", api.ContactViewSet, basename="contact")
router.register("canned-replies", api.CannedReplyViewSet, basename="canned-reply")

urlpatterns = [
    path("", include(router.urls)),
]
