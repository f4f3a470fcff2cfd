from django.urls import path

from . import views

app_name = "myaccess"

urlpatterns = [
    path("", views.home, name="home"),
]
