"""What OpenHands' config knows and runhands does not use: accepted with one warning line
per file, so an existing OpenHands `config.toml` loads (a typo is still an error).

Gathered from OpenHands' openhands/core/config/ (V0 config: openhands_config.py / older
app_config.py, llm_config.py, agent_config.py, sandbox_config.py, condenser_config.py, the
known_sections list in utils.py) and config.template.toml.
"""


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


OPENHANDS_ONLY_SECTIONS = frozenset(
    {"security", "extended", "kubernetes", "model_routing", "offload", "cli"}
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
        openrouter_site_url
        openrouter_app_name modify_params disable_vision
        disable_stop_word log_completions log_completions_folder custom_tokenizer
        safety_settings for_routing correct_num completion_kwargs embedding_model
        embedding_base_url embedding_deployment_name native_tool_calling
        """
    ),
    "agent": _names(
        """
        cli_mode classpath system_prompt_filename enable_browsing
        enable_llm_editor enable_jupyter enable_condensation_request
        enable_mcp enable_history_truncation
        enable_som_visual_browsing enable_plan_mode condenser model_routing extended runtime
        function_calling codeact_enable_browsing codeact_enable_llm_editor
        codeact_enable_jupyter micro_agent_name memory_enabled memory_max_threads
        """
    ),
    "sandbox": _names(
        """
        remote_runtime_api_url local_runtime_url pause_closed_runtimes rm_all_containers
        api_key remote_runtime_init_timeout remote_runtime_api_timeout
        remote_runtime_enable_retries remote_runtime_class enable_auto_lint
        additional_networks runtime_binding_address runtime_extra_build_args
        initialize_plugins force_rebuild_runtime runtime_extra_deps browsergym_eval_env
        platform close_delay remote_runtime_resource_factor enable_gpu
        gpu_base_container_image docker_runtime_kwargs trusted_dirs
        vscode_port cuda_visible_devices
        """
    ),
    # llm_config: summaries always come from the run's model.
    "condenser": _names(
        """
        max_event_length max_events summary_max_length llm_config
        condensers
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


# Environment variables OpenHands derives from its config classes beyond the sections' keys
# above (utils.py: load_from_env walks nested models with their field name as prefix), and
# those its logger reads (logger.py). Named on stderr when set, since runhands ignores them.
_OTHER_OPENHANDS_ENV = _names(
    """
    LLMS AGENTS EXTENDED_ROOT SECURITY_CONFIRMATION_MODE SECURITY_SECURITY_ANALYZER
    CLI_VI_MODE
    MODEL_ROUTING_ROUTER_NAME MODEL_ROUTING_LLMS_FOR_ROUTING
    KUBERNETES_NAMESPACE KUBERNETES_INGRESS_DOMAIN KUBERNETES_PVC_STORAGE_SIZE
    KUBERNETES_PVC_STORAGE_CLASS KUBERNETES_RESOURCE_CPU_REQUEST
    KUBERNETES_RESOURCE_MEMORY_REQUEST KUBERNETES_RESOURCE_MEMORY_LIMIT
    KUBERNETES_IMAGE_PULL_SECRET KUBERNETES_INGRESS_TLS_SECRET KUBERNETES_NODE_SELECTOR_KEY
    KUBERNETES_NODE_SELECTOR_VAL KUBERNETES_TOLERATIONS_YAML KUBERNETES_PRIVILEGED
    LOG_TO_FILE LOG_JSON LOG_JSON_LEVEL_KEY DEBUG_LLM DEBUG_RUNTIME
    """
)
_ENV_PREFIXES = {"core": "", "llm": "LLM_", "agent": "AGENT_", "sandbox": "SANDBOX_"}
# The keys of the [llm] object OpenHands also walks as a condenser's `llm_config`
# (LLM_CONFIG_*): every OpenHands LLMConfig field, ours included.
_LLM_CONFIG_FIELDS = _names(
    """
    model api_key base_url api_version aws_access_key_id aws_secret_access_key
    aws_region_name openrouter_site_url openrouter_app_name num_retries retry_multiplier
    retry_min_wait retry_max_wait timeout max_message_chars temperature top_p top_k
    custom_llm_provider max_input_tokens max_output_tokens input_cost_per_token
    output_cost_per_token ollama_base_url drop_params modify_params disable_vision
    disable_stop_word caching_prompt log_completions log_completions_folder
    custom_tokenizer native_tool_calling reasoning_effort seed safety_settings for_routing
    correct_num completion_kwargs
    """
)


def openhands_env_names() -> frozenset[str]:
    """Every environment variable OpenHands headless reads as a setting (some of which
    runhands supports too: the caller subtracts its own)."""
    names = set(_OTHER_OPENHANDS_ENV)
    for section, prefix in _ENV_PREFIXES.items():
        names.update(prefix + key.upper() for key in OPENHANDS_ONLY_KEYS[section])
    names.update("CONDENSER_" + key.upper() for key in OPENHANDS_ONLY_KEYS["condenser"])
    names.update("LLM_CONFIG_" + key.upper() for key in _LLM_CONFIG_FIELDS)
    return frozenset(names)
