"""An external lifecycle manager (what a launch file or `ros2 lifecycle set` does), in its own process.

Usage: python lifecycle_manager.py OUT.json. Talks to /df_agent_policy over the standard lifecycle and
parameter services: configure (expected to fail: the node was started with a bad ROS parameter), fix the
parameter with set_parameters, configure, activate, wait, deactivate, shut down. Writes what it saw.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import rclpy
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters


def main() -> int:
    out = Path(sys.argv[1])
    rclpy.init()
    node = rclpy.create_node("lifecycle_manager")
    seen: dict[str, object] = {}
    try:
        change = node.create_client(ChangeState, "/df_agent_policy/change_state")
        get = node.create_client(GetState, "/df_agent_policy/get_state")
        set_params = node.create_client(SetParameters, "/df_agent_policy/set_parameters")

        def call(client, request):
            if not client.wait_for_service(timeout_sec=30.0):
                raise RuntimeError(f"{client.srv_name} not available")
            future = client.call_async(request)
            rclpy.spin_until_future_complete(node, future, timeout_sec=10.0)
            return future.result()

        def transition(transition_id: int) -> bool:
            request = ChangeState.Request()
            request.transition.id = transition_id
            return bool(call(change, request).success)

        seen["initial"] = call(get, GetState.Request()).current_state.label
        seen["configure_with_bad_param"] = transition(Transition.TRANSITION_CONFIGURE)
        value = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=0.02)
        result = call(
            set_params,
            SetParameters.Request(parameters=[Parameter(name="safety.max_translation_per_step", value=value)]),
        )
        seen["set_parameter"] = all(r.successful for r in result.results)
        seen["configure"] = transition(Transition.TRANSITION_CONFIGURE)
        seen["activate"] = transition(Transition.TRANSITION_ACTIVATE)
        seen["state_active"] = call(get, GetState.Request()).current_state.label
        time.sleep(1.5)
        seen["deactivate"] = transition(Transition.TRANSITION_DEACTIVATE)
        seen["shutdown"] = transition(Transition.TRANSITION_INACTIVE_SHUTDOWN)
    finally:
        out.write_text(json.dumps(seen))
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
