"""What OpenHands' config knows and runhands does not use: accepted with one warning line
per file, so an existing OpenHands `config.toml` loads (a typo is still an error).

Gathered from OpenHands' openhands/core/config/ (V0 config: openhands_config.py / older
app_config.py, llm_config.py, agent_config.py, sandbox_config.py, condenser_config.py, the
known_sections list in utils.py) and config.template.toml.
"""


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


OPENHANDS_ONLY_SECTIONS = frozenset(
    {"security", "extended", "mcp", "kubernetes", "model_routing", "offload", "cli"}
)
OPENHANDS_ONLY_KEYS: dict[str, frozenset[str]] = {
    "core": _names(
        """
        default_agent file_store file_store_web_hook_url file_store_web_hook_headers
        file_store_web_hook_batch enable_browser save_screenshots_in_trajectory
        search_api_key workspace_mount_path workspace_mount_rewrite cache_dir
        run_as_openhands init_git_in_empty_workspace disable_color jwt_secret debug
        file_uploads_max_file_size_mb file_uploads_restrict_file_types
        file_uploads_allowed_extensions cli_multiline_input conversation_max_age_seconds
        enable_default_condenser max_concurrent_conversations client_wait_timeout mcp_host
        git_user_name git_user_email trajectories_path e2b_api_key modal_api_token_id
        modal_api_token_secret runloop_api_key enable_cli_session
        """
    ),
    # native_tool_calling: runhands always calls tools natively (litellm function calling).
    "llm": _names(
        """
        aws_access_key_id aws_secret_access_key aws_region_name openrouter_site_url
        openrouter_app_name top_k ollama_base_url modify_params disable_vision
        disable_stop_word log_completions log_completions_folder custom_tokenizer seed
        safety_settings for_routing correct_num completion_kwargs embedding_model
        embedding_base_url embedding_deployment_name native_tool_calling
        """
    ),
    "agent": _names(
        """
        cli_mode llm_config classpath system_prompt_filename enable_browsing
        enable_llm_editor enable_jupyter enable_condensation_request
        enable_prompt_extensions enable_mcp disabled_microagents enable_history_truncation
        enable_som_visual_browsing enable_plan_mode condenser model_routing extended runtime
        function_calling codeact_enable_browsing codeact_enable_llm_editor
        codeact_enable_jupyter micro_agent_name memory_enabled memory_max_threads
        """
    ),
    "sandbox": _names(
        """
        remote_runtime_api_url local_runtime_url pause_closed_runtimes rm_all_containers
        api_key remote_runtime_init_timeout remote_runtime_api_timeout
        remote_runtime_enable_retries remote_runtime_class enable_auto_lint use_host_network
        additional_networks runtime_binding_address runtime_extra_build_args
        initialize_plugins force_rebuild_runtime runtime_extra_deps browsergym_eval_env
        platform close_delay remote_runtime_resource_factor enable_gpu
        gpu_base_container_image docker_runtime_kwargs selected_repo trusted_dirs
        vscode_port cuda_visible_devices
        """
    ),
    # llm_config: summaries always come from the run's model.
    "condenser": _names(
        """
        max_event_length attention_window max_events summary_max_length llm_config
        """
    ),
}

# OpenHands' template writes 0 for "no limit" on these.
ZERO_MEANS_UNSET = frozenset(
    {
        "core.max_budget_per_task",
        "core.max_runtime_seconds",
        "llm.timeout",
        "llm.max_input_tokens",
        "llm.max_output_tokens",
    }
)
