"""Jobs made before projects and summaries: file them in their owner's "Default" project and
compute their summary numbers from the epochs they recorded."""

from django.db import migrations


def backfill(apps, schema_editor):
    from webapp.experiments.summary import summary_fields

    Job, Project, JobMetric = (apps.get_model("experiments", name) for name in ("Job", "Project", "JobMetric"))
    projects = {}
    for job in Job.objects.filter(project__isnull=True).iterator(chunk_size=500):
        if job.owner_id not in projects:
            projects[job.owner_id] = Project.objects.get_or_create(owner_id=job.owner_id, name="Default")[0]
        metrics = [{"epoch": m.epoch, **m.values} for m in JobMetric.objects.filter(job_id=job.id).order_by("epoch")]
        fields = summary_fields(metrics, job.result)
        Job.objects.filter(id=job.id).update(project=projects[job.owner_id], **fields)


class Migration(migrations.Migration):
    dependencies = [("experiments", "0006_experiment_records")]
    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
