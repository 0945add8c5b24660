{{/*
The alert rules: the one source of the PrometheusRule, the rules ConfigMap and
deploy/prometheus/netwatch-rules.yaml (deploy/prometheus/render-rules.sh). Renders a Prometheus
rules file body ("groups: ..."). Metric names and labels are the agent's contract (README).
Workload = namespace + pod; both are empty for host processes.
*/}}
{{- define "netwatch.ruleGroups" -}}
{{- $a := .Values.alerts -}}
{{- $w := $a.rateWindow -}}
{{- $sel := printf "job=%q" .Values.metrics.job -}}
{{- $flow := "namespace, pod, direction, peer, port" -}}
{{- /* The latency histograms are per service: a flow without its peer. */ -}}
{{- $service := "namespace, pod, direction, port" -}}
{{- $workload := `{{ if $labels.pod }}pod {{ $labels.namespace }}/{{ $labels.pod }}{{ else }}host processes{{ end }}` -}}
{{- $peer := `{{ $labels.peer }}:{{ $labels.port }}` -}}
groups:
  - name: netwatch.tcp
    rules:
    {{- with $a.retransmitRatio }}{{ if .enabled }}
      - alert: NetwatchTCPRetransmitRatioHigh
        expr: |
          (
              sum by ({{ $flow }}) (rate(netwatch_tcp_retransmits_total{ {{- $sel -}} }[{{ $w }}]))
            /
              sum by ({{ $flow }}) (rate(netwatch_tcp_segments_sent_total{ {{- $sel -}} }[{{ $w }}]))
          ) > {{ .threshold }}
          and
          sum by ({{ $flow }}) (rate(netwatch_tcp_segments_sent_total{ {{- $sel -}} }[{{ $w }}])) > {{ .minSegmentsPerSecond }}
        for: {{ .for }}
        labels:
          severity: {{ .severity }}
          {{- with $a.labels }}{{ toYaml . | nindent 10 }}{{ end }}
        annotations:
          summary: {{ printf "TCP retransmit ratio high from %s to %s" $workload $peer | quote }}
          description: {{ printf "%s (%s) retransmits %s of its segments to %s (threshold %v) over %s." $workload `{{ $labels.direction }}` `{{ $value | humanizePercentage }}` $peer .threshold $w | quote }}
          {{- with $a.runbookUrlPrefix }}
          runbook_url: {{ . }}NetwatchTCPRetransmitRatioHigh
          {{- end }}
    {{- end }}{{ end }}
    {{- with $a.retransmitSpike }}{{ if .enabled }}
      - alert: NetwatchTCPRetransmitSpike
        expr: |
          sum by (namespace, pod) (rate(netwatch_tcp_retransmits_total{ {{- $sel -}} }[{{ $w }}]))
            > {{ .factor }} * sum by (namespace, pod) (rate(netwatch_tcp_retransmits_total{ {{- $sel -}} }[{{ .baselineWindow }}] offset {{ $w }}))
          and
          sum by (namespace, pod) (rate(netwatch_tcp_retransmits_total{ {{- $sel -}} }[{{ $w }}])) > {{ .minRetransmitsPerSecond }}
        for: {{ .for }}
        labels:
          severity: {{ .severity }}
          {{- with $a.labels }}{{ toYaml . | nindent 10 }}{{ end }}
        annotations:
          summary: {{ printf "TCP retransmits of %s jumped above %vx their baseline" $workload .factor | quote }}
          description: {{ printf "%s retransmits %s segments/s, more than %v times its rate over the %s before." $workload `{{ $value | humanize }}` .factor .baselineWindow | quote }}
          {{- with $a.runbookUrlPrefix }}
          runbook_url: {{ . }}NetwatchTCPRetransmitSpike
          {{- end }}
    {{- end }}{{ end }}
    {{- with $a.connectFailureRatio }}{{ if .enabled }}
      - alert: NetwatchTCPConnectFailureRatioHigh
        expr: |
          (
              sum by (namespace, pod, peer, port) (rate(netwatch_tcp_connects_total{ {{- $sel -}} ,direction="outbound",result!="ok"}[{{ $w }}]))
            /
              sum by (namespace, pod, peer, port) (rate(netwatch_tcp_connects_total{ {{- $sel -}} ,direction="outbound"}[{{ $w }}]))
          ) > {{ .threshold }}
          and
          sum by (namespace, pod, peer, port) (rate(netwatch_tcp_connects_total{ {{- $sel -}} ,direction="outbound"}[{{ $w }}])) > {{ .minConnectsPerSecond }}
        for: {{ .for }}
        labels:
          severity: {{ .severity }}
          {{- with $a.labels }}{{ toYaml . | nindent 10 }}{{ end }}
        annotations:
          summary: {{ printf "TCP connects from %s to %s are failing" $workload $peer | quote }}
          description: {{ printf "%s of the connects of %s to %s fail (refused, timeout, reset, closed_before_established or error; threshold %v)." `{{ $value | humanizePercentage }}` $workload $peer .threshold | quote }}
          {{- with $a.runbookUrlPrefix }}
          runbook_url: {{ . }}NetwatchTCPConnectFailureRatioHigh
          {{- end }}
    {{- end }}{{ end }}
    {{- with $a.rttP99 }}{{ if .enabled }}
      - alert: NetwatchTCPRttP99High
        expr: |
          (
            histogram_quantile(0.99,
              sum by ({{ $service }}, le) (rate(netwatch_tcp_rtt_seconds_bucket{ {{- $sel -}} }[{{ $w }}]))
            )
            or
            histogram_quantile(0.99, sum by ({{ $service }}) (rate(netwatch_tcp_rtt_seconds{ {{- $sel -}} }[{{ $w }}])))
          ) > {{ .thresholdSeconds }}
          and
          (
            sum by ({{ $service }}) (rate(netwatch_tcp_rtt_seconds_count{ {{- $sel -}} }[{{ $w }}]))
            or
            sum by ({{ $service }}) (histogram_count(rate(netwatch_tcp_rtt_seconds{ {{- $sel -}} }[{{ $w }}])))
          ) > {{ .minSamplesPerSecond }}
        for: {{ .for }}
        labels:
          severity: {{ .severity }}
          {{- with $a.labels }}{{ toYaml . | nindent 10 }}{{ end }}
        annotations:
          summary: {{ printf "TCP RTT p99 high from %s on port %s" $workload `{{ $labels.port }}` | quote }}
          description: {{ printf "The 99th percentile smoothed RTT of %s (%s) on port %s, over all its peers, is %s (threshold %vs). netwatch top or /api/v1/connections shows which peers." $workload `{{ $labels.direction }}` `{{ $labels.port }}` `{{ $value | humanizeDuration }}` .thresholdSeconds | quote }}
          {{- with $a.runbookUrlPrefix }}
          runbook_url: {{ . }}NetwatchTCPRttP99High
          {{- end }}
    {{- end }}{{ end }}
  - name: netwatch.agent
    rules:
    {{- with $a.eventsLost }}{{ if .enabled }}
      - alert: NetwatchAgentLosingEvents
        expr: |
          sum without (type) (rate(netwatch_events_lost_total{ {{- $sel -}} }[{{ $w }}])) > {{ .thresholdPerSecond }}
        for: {{ .for }}
        labels:
          severity: {{ .severity }}
          {{- with $a.labels }}{{ toYaml . | nindent 10 }}{{ end }}
        annotations:
          summary: {{ printf "netwatch agent %s is losing kernel events" `{{ $labels.instance }}` | quote }}
          description: {{ printf "The agent %s loses %s kernel events/s: its event buffer overflows and its TCP metrics undercount. Raise --ring-size or lower --drain-interval." `{{ $labels.instance }}` `{{ $value | humanize }}` | quote }}
          {{- with $a.runbookUrlPrefix }}
          runbook_url: {{ . }}NetwatchAgentLosingEvents
          {{- end }}
    {{- end }}{{ end }}
    {{- with $a.agentDown }}{{ if .enabled }}
      - alert: NetwatchAgentDown
        expr: |
          up{ {{- $sel -}} } == 0
        for: {{ .for }}
        labels:
          severity: {{ .severity }}
          {{- with $a.labels }}{{ toYaml . | nindent 10 }}{{ end }}
        annotations:
          summary: {{ printf "netwatch agent %s cannot be scraped" `{{ $labels.instance }}` | quote }}
          description: {{ printf "Prometheus has failed to scrape the netwatch agent %s for %s: that node has no TCP metrics." `{{ $labels.instance }}` .for | quote }}
          {{- with $a.runbookUrlPrefix }}
          runbook_url: {{ . }}NetwatchAgentDown
          {{- end }}
    {{- end }}{{ end }}
    {{- with $a.agentAbsent }}{{ if .enabled }}
      - alert: NetwatchAgentAbsent
        expr: |
          absent(up{ {{- $sel -}} } == 1)
        for: {{ .for }}
        labels:
          severity: {{ .severity }}
          {{- with $a.labels }}{{ toYaml . | nindent 10 }}{{ end }}
        annotations:
          summary: "No netwatch agent is up"
          description: {{ printf "Prometheus has scraped no healthy target of job %q for %s: no TCP metrics from any node, and no netwatch alert can fire." $.Values.metrics.job .for | quote }}
          {{- with $a.runbookUrlPrefix }}
          runbook_url: {{ . }}NetwatchAgentAbsent
          {{- end }}
    {{- end }}{{ end }}
{{- end -}}
