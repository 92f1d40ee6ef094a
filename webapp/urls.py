"""URL map: pages, the REST API under /api/, the OpenAPI schema and docs, /healthz."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from webapp.accounts.logins import AdminLoginForm, LoginForm, answers_429_when_paused
from webapp.accounts.views import account_page
from webapp.datasets import views as dataset_pages
from webapp.datasets.api import DatasetViewSet, UploadViewSet
from webapp.demos import views as demo_pages
from webapp.demos.api import ShareView
from webapp.experiments import model_list, model_pages
from webapp.experiments import views as experiment_pages
from webapp.experiments.api import JobViewSet, ProjectViewSet
from webapp.experiments.backbones_api import BackboneViewSet
from webapp.experiments.compare_api import CompareView
from webapp.experiments.models_api import ArchitectureSummaryView, ArchitecturesView, TrainedModelViewSet
from webapp.experiments.params_api import ParamsView
from webapp.ops.views import QueueStatusView, WorkersView, healthz, workers_page
from webapp.sweeps import views as sweep_pages
from webapp.sweeps.api import SweepViewSet

# Failed admin logins count against the same limits as the login page's (webapp.accounts.logins).
admin.site.login_form = AdminLoginForm

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("jobs", JobViewSet, basename="job")
router.register("projects", ProjectViewSet, basename="project")
router.register("datasets", DatasetViewSet, basename="dataset")
router.register("uploads", UploadViewSet, basename="upload")
router.register("models", TrainedModelViewSet, basename="model")
router.register("backbones", BackboneViewSet, basename="backbone")
router.register("sweeps", SweepViewSet, basename="sweep")

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="datasets", permanent=False)),
    path("healthz", healthz, name="healthz"),
    path("login/", answers_429_when_paused(auth_views.LoginView.as_view(
        redirect_authenticated_user=True, authentication_form=LoginForm)), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/", account_page, name="account"),
    path("account/password/", auth_views.PasswordChangeView.as_view(
        success_url="/account/"), name="password_change"),
    path("jobs/", experiment_pages.jobs_page, name="jobs"),
    path("jobs/<int:job_id>/", experiment_pages.job_page, name="job"),
    path("jobs/<int:job_id>/cancel/", experiment_pages.cancel_job_page, name="job-page-cancel"),
    path("jobs/<int:job_id>/delete/", experiment_pages.delete_job_page, name="job-page-delete"),
    path("compare/", experiment_pages.compare_page, name="compare"),
    path("sweeps/", sweep_pages.sweeps_page, name="sweeps"),
    path("sweeps/<int:sweep_id>/", sweep_pages.sweep_page, name="sweep"),
    path("datasets/", dataset_pages.datasets_page, name="datasets"),
    path("datasets/add/", dataset_pages.add_source, name="dataset-add-source"),
    path("datasets/<int:dataset_id>/", dataset_pages.dataset_page, name="dataset"),
    path("datasets/<int:dataset_id>/delete/", dataset_pages.delete_dataset, name="dataset-delete"),
    path("datasets/<int:dataset_id>/read-as/", dataset_pages.read_as, name="dataset-read-as"),
    path("datasets/<int:dataset_id>/thumbs/<path:path>", dataset_pages.thumbnail, name="dataset-thumb"),
    path("datasets/<int:dataset_id>/images/<int:item_id>", dataset_pages.image, name="dataset-image"),
    path("jobs/<int:job_id>/resume/", experiment_pages.resume_job_page, name="job-page-resume"),
    path("train/", experiment_pages.train_page, name="train"),
    path("models/", model_list.models_page, name="models"),
    path("models/<int:model_id>/", experiment_pages.model_page, name="model"),
    path("architectures/", experiment_pages.architectures_page, name="architectures"),
    path("captioner/", model_pages.captioner_page, name="captioner"),
    path("features/", model_pages.features_page, name="features"),
    path("workers/", workers_page, name="workers"),
    path("demo/<str:token>/", demo_pages.demo_page, name="demo"),
    path("demo/<str:token>/caption/", demo_pages.DemoCaptionView.as_view(), name="demo-caption"),
    path("demo/<str:token>/examples/<int:n>", demo_pages.demo_example, name="demo-example"),
    path("admin/login/", answers_429_when_paused(admin.site.login)),  # before the admin's own, same view
    path("admin/", admin.site.urls),
    path("api/models/<int:id>/share/", ShareView.as_view(), name="api-model-share"),  # the demos app's
    path("api/", include(router.urls)),
    path("api/workers/", WorkersView.as_view(), name="api-workers"),
    path("api/compare/", CompareView.as_view(), name="api-compare"),
    path("api/architectures/", ArchitecturesView.as_view(), name="api-architectures"),
    path("api/architectures/<str:name>/summary/", ArchitectureSummaryView.as_view(), name="api-architecture-summary"),
    path("api/queue-status/", QueueStatusView.as_view(), name="api-queue-status"),
    path("api/params/", ParamsView.as_view(), name="api-params"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
