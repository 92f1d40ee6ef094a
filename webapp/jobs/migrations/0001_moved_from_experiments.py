"""Job and JobMetric move here from the experiments app, keeping their tables (experiments_job, experiments_jobmetric,
experiments_job_tags) and every row: only Django's idea of which app owns them changes (experiments 0012 drops them
from its state the same way)."""

import django.db.models.deletion
import django.utils.timezone
import webapp.jobs.registry
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('datasets', '0002_dataset_warnings'),
        ('experiments', '0011_job_kind_from_registry'),
        ('sweeps', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.CreateModel(
                name='Job',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('kind', models.CharField(choices=webapp.jobs.registry.choices, max_length=32)),
                    ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed'), ('cancelled', 'Cancelled'), ('pruned', 'Pruned')], default='queued', max_length=16)),
                    ('queue', models.CharField(default='cpu', max_length=32)),
                    ('params', models.JSONField(blank=True, default=dict)),
                    ('progress', models.FloatField(default=0.0)),
                    ('message', models.CharField(blank=True, max_length=300)),
                    ('result', models.JSONField(blank=True, null=True)),
                    ('error', models.TextField(blank=True)),
                    ('failure', models.CharField(blank=True, choices=[('inputs', 'Its inputs were refused'), ('internal', 'An internal error'), ('time_limit', 'It ran past its time limit'), ('worker_lost', 'Its worker died'), ('not_started', 'It never reached a worker')], max_length=16)),
                    ('worker', models.CharField(blank=True, help_text='Celery node that ran it.', max_length=200)),
                    ('device', models.CharField(blank=True, help_text='CPU or GPU it ran on.', max_length=200)),
                    ('cancel_requested', models.BooleanField(default=False)),
                    ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ('started_at', models.DateTimeField(blank=True, null=True)),
                    ('finished_at', models.DateTimeField(blank=True, null=True)),
                    ('updated_at', models.DateTimeField(auto_now=True)),
                    ('note', models.TextField(blank=True, max_length=2000)),
                    ('record', models.JSONField(blank=True, default=dict)),
                    ('test_accuracy', models.FloatField(blank=True, null=True)),
                    ('best_val_accuracy', models.FloatField(blank=True, null=True)),
                    ('best_val_loss', models.FloatField(blank=True, null=True)),
                    ('bleu4', models.FloatField(blank=True, null=True)),
                    ('best_epoch', models.PositiveIntegerField(blank=True, null=True)),
                    ('epochs_run', models.PositiveIntegerField(blank=True, null=True)),
                    ('curve', models.JSONField(blank=True, default=dict, help_text='The validation curve for sparklines: {"metric", "points": at most 40 [epoch, value], the best kept}.')),
                    ('trial_number', models.PositiveIntegerField(blank=True, null=True)),
                    ('dataset', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='jobs', to='datasets.dataset')),
                    ('owner', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='jobs', to=settings.AUTH_USER_MODEL)),
                    ('project', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='jobs', to='experiments.project')),
                    ('sweep', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='jobs', to='sweeps.sweep')),
                    ('tags', models.ManyToManyField(blank=True, related_name='jobs', to='experiments.tag')),
                ],
                options={
                    'db_table': 'experiments_job',
                    'ordering': ['-created_at', '-id'],
                },
            ),
            migrations.CreateModel(
                name='JobMetric',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('epoch', models.PositiveIntegerField()),
                    ('values', models.JSONField(default=dict)),
                    ('recorded_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ('job', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='metrics', to='job_platform.job')),
                ],
                options={
                    'db_table': 'experiments_jobmetric',
                    'ordering': ['job', 'epoch'],
                },
            ),
            migrations.AddIndex(
                model_name='job',
                index=models.Index(fields=['owner', '-created_at'], name='experiments_owner_i_83e292_idx'),
            ),
            migrations.AddIndex(
                model_name='job',
                index=models.Index(fields=['status', 'created_at'], name='experiments_status_eb607f_idx'),
            ),
            migrations.AddConstraint(
                model_name='jobmetric',
                constraint=models.UniqueConstraint(fields=('job', 'epoch'), name='one_metric_per_epoch'),
            ),
        ], database_operations=[]),
    ]
