# The user and group models django-scim2 needs an application to provide: Django's own user with
# django-scim2's SCIM mixin, and a group with its SCIM mixin, as django-scim2's documentation
# shows. Nothing else is added: the SCIM behaviour is django-scim2's.
from django.contrib.auth.models import AbstractUser
from django.db import models
from django_scim.models import AbstractSCIMGroupMixin, AbstractSCIMUserMixin


class Group(AbstractSCIMGroupMixin):
    name = models.CharField("name", max_length=150, unique=True)


class User(AbstractSCIMUserMixin, AbstractUser):
    scim_groups = models.ManyToManyField(Group, related_name="user_set")
