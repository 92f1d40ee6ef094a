from django.contrib import admin

from webapp.jobs.models import Job, JobMetric


class JobMetricInline(admin.TabularInline):
    model = JobMetric
    extra = 0
    readonly_fields = ["epoch", "values", "recorded_at"]


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "status", "owner", "worker", "progress", "created_at"]
    list_filter = ["status", "kind", "queue"]
    search_fields = ["id", "owner__username", "worker"]
    readonly_fields = ["created_at", "started_at", "finished_at", "updated_at"]
    inlines = [JobMetricInline]
