from django.urls import path

from . import views

app_name = "reviews"

urlpatterns = [
    path("", views.review_list, name="list"),
    path("decide/", views.review_decide, name="decide"),
    path("<str:pk>/accept-recommendations/", views.accept_recommendations, name="accept"),
]
