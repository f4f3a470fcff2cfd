from django.urls import path

from . import views

app_name = "approvals"

urlpatterns = [
    path("decide/<str:token>/", views.email_decision, name="email_decision"),
    path("decided/", views.email_decision_done, name="email_decision_done"),
]
