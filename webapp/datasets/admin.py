from django.contrib import admin

from webapp.datasets.models import Dataset, Upload


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "kind", "status", "owner", "num_items", "created_at"]
    list_filter = ["status", "kind"]
    search_fields = ["name", "owner__username", "content_hash"]
    readonly_fields = ["content_hash", "created_at", "ready_at"]


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = ["id", "filename", "owner", "size", "offset", "created_at"]
