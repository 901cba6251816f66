"""The customer simulator, mounted at /simulator/ (see whatsapp/simulator.py)."""

from django.urls import path

from whatsapp import simulator

urlpatterns = [
    path("", simulator.page, name="simulator"),
    path("n/<int:number>/customers/", simulator.customer_create, name="simulator-customer-create"),
    path("n/<int:number>/c/<int:customer>/thread/", simulator.thread, name="simulator-thread"),
    path("n/<int:number>/c/<int:customer>/send/", simulator.send, name="simulator-send"),
    path("n/<int:number>/c/<int:customer>/tap/", simulator.tap, name="simulator-tap"),
]
