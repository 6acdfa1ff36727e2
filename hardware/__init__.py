"""df-agent: the ROS 2 bridge to a Franka robot (see docs/ros2.md).

Pure Python (no ROS needed): `config` (YAML config), `safety` (the safety layer), `observation` (timestamped
caches, policy observations with noise flags), `control_loop` (one tick), `transforms`, `scripted_policies`,
`policy_loader`, `timing`, `netns`. With rclpy: `policy_node` (the `df_agent_policy` lifecycle node),
`sim_node` (simulated Franka), `gripper`, `messages`, `bag_recorder`, `spin`.
"""
