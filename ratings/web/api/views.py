"""The research API: studies, leaderboards and analysis snapshots over REST, for researchers.

Token auth (``Authorization: Token <key>``; create one in the admin or with
``manage.py drf_create_token USER``) or a researcher's session. Reads only cached snapshots;
POST .../snapshots/ asks the worker to compute new ones.
"""

from django.db.models import Count
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from ratings.analysis.fact_check import payload_human_accuracy
from ratings.analysis.payload import leaderboard_json, payload_extensions, payload_substance
from ratings.analysis.snapshots import latest_snapshot
from ratings.models import Study
from ratings.tasks import compute_analysis_snapshots

TRUSTED = OpenApiParameter("trusted", bool, description="Only raters that Dawid-Skene rates as reliable.")
NO_SNAPSHOT = "No analysis snapshot yet: POST to this study's snapshots/ to compute one."


class StudySerializer(serializers.ModelSerializer):
    n_votes = serializers.IntegerField()
    reference_model = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = Study
        fields = ["slug", "title", "status", "mode", "imported", "reference_model", "n_votes", "created_at"]


def _snapshot_key(request) -> str:
    return "analysis:trusted" if request.query_params.get("trusted") in {"1", "true", "yes"} else "analysis"


class StudyList(APIView):
    @extend_schema(responses=StudySerializer(many=True))
    def get(self, request):
        studies = Study.objects.select_related("reference_model").annotate(n_votes=Count("comparisons__votes"))
        return Response(StudySerializer(studies, many=True).data)


LEADERBOARD = inline_serializer(
    "Leaderboard",
    {
        "n_votes": serializers.IntegerField(),
        "models": serializers.ListField(child=serializers.DictField()),
        "style_coefficients": serializers.DictField(allow_null=True),
        "computed_at": serializers.DateTimeField(),
    },
)


class StudyLeaderboard(APIView):
    @extend_schema(parameters=[TRUSTED], responses={200: LEADERBOARD})
    def get(self, request, slug):
        study = get_object_or_404(Study, slug=slug)
        snap = latest_snapshot(study, _snapshot_key(request))
        if snap is None:
            return Response({"detail": NO_SNAPSHOT}, status=status.HTTP_404_NOT_FOUND)
        return Response(
            {
                **leaderboard_json(
                    snap.payload["leaderboard"], payload_substance(snap.payload), payload_human_accuracy(snap.payload)
                ),
                **payload_extensions(snap.payload),
                "computed_at": snap.computed_at,
            }
        )


class StudyAnalysis(APIView):
    @extend_schema(parameters=[TRUSTED], responses={200: OpenApiTypes.OBJECT})
    def get(self, request, slug):
        study = get_object_or_404(Study, slug=slug)
        snap = latest_snapshot(study, _snapshot_key(request))
        if snap is None:
            return Response({"detail": NO_SNAPSHOT}, status=status.HTTP_404_NOT_FOUND)
        return Response({"computed_at": snap.computed_at, "compute_seconds": snap.compute_seconds, **snap.payload})


class StudySnapshots(APIView):
    @extend_schema(request=None, responses={202: inline_serializer("Queued", {"task_id": serializers.CharField()})})
    def post(self, request, slug):
        study = get_object_or_404(Study, slug=slug)
        result = compute_analysis_snapshots.delay(study.pk)
        return Response({"task_id": result.id}, status=status.HTTP_202_ACCEPTED)
