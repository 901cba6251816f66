"""Subscribers API: /api/v1/subscribers/…

The fixed paths come before ``<code>``: a subscriber's code is one path segment.
"""

from __future__ import annotations

from django.urls import URLPattern, path

from subscribers import api

urlpatterns: list[URLPattern] = [
    path("", api.SubscriberListView.as_view(), name="subscriber-list"),
    path("bulk", api.SubscriberBulkView.as_view(), name="subscriber-bulk"),
    path("plans/bulk", api.PlanBulkView.as_view(), name="plan-bulk"),
    path("contracts/bulk", api.ContractBulkView.as_view(), name="contract-bulk"),
    path("invoices/bulk", api.InvoiceBulkView.as_view(), name="invoice-bulk"),
    path("outages/", api.OutageListView.as_view(), name="outage-list"),
    path("outages/bulk", api.OutageBulkView.as_view(), name="outage-bulk"),
    path("<str:code>", api.SubscriberDetailView.as_view(), name="subscriber-detail"),
]
