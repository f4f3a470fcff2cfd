"""The official msgraph-sdk against a live server: /me, users with $filter and $count (with
ConsistencyLevel: eventual, as Graph asks) and a group's members."""

import asyncio

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.user import User as GraphUser
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

from api.permissions import USER_READ_ALL
from tests.api.sdk import graph_as
from tests.factories import GroupFactory, UserFactory, add_member

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_graph_sdk_reads_me_users_and_members(live_server, user_token, admin_user):
    manager = UserFactory(display_name="Mia Manager")
    ann = UserFactory(display_name="Ann Anders", manager=manager)
    group = GroupFactory(display_name="Readers")
    add_member(group, ann)
    graph = graph_as(live_server, user_token(admin_user, [USER_READ_ALL, "Group.Read.All"]))

    async def journey():
        me = await graph.me.get()
        config = RequestConfiguration(
            query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
                filter="startswith(displayName,'Ann')", count=True, expand=["manager"]
            )
        )
        config.headers.add("ConsistencyLevel", "eventual")
        users = await graph.users.get(config)
        members = await graph.groups.by_group_id(str(group.pk)).members.get()
        return me, users, members

    me, users, members = asyncio.run(journey())

    assert (me.id, me.display_name) == (str(admin_user.pk), admin_user.display_name)
    assert users.odata_count == 1
    [shown] = users.value
    assert (shown.id, shown.mail, shown.account_enabled) == (str(ann.pk), ann.email, True)
    assert shown.manager.id == str(manager.pk)
    assert [type(m) for m in members.value] == [GraphUser]
    assert members.value[0].display_name == "Ann Anders"
